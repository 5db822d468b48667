package main

import (
	"fmt"
	"io"
	"os"

	"dkv/internal/nodeproc"
)

// workspace makes a temporary directory under dir for a benchmark's data
// (named after prefix) and finds the cmd/node binary to run: nodeBin if
// given, else one built into the workspace. The caller removes work.
func workspace(dir, prefix, nodeBin string, out io.Writer) (work, bin string, err error) {
	work, err = os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", "", err
	}
	if nodeBin != "" {
		return work, nodeBin, nil
	}
	fmt.Fprintln(out, "building cmd/node ...")
	if bin, err = nodeproc.Build(work); err != nil {
		os.RemoveAll(work)
		return "", "", err
	}
	return work, bin, nil
}
