package vecidx

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkTune: VECIDX_OPTS="M=16,efc=32,ef=48,seg=4096,merge=0,n=20000"
func BenchmarkTune(b *testing.B) {
	o := DefaultIndexOptions()
	n := 20000
	for _, kv := range strings.Split(os.Getenv("VECIDX_OPTS"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		i, _ := strconv.Atoi(v)
		switch k {
		case "M":
			o.M = i
		case "efc":
			o.EfConstruction = i
		case "segefc":
			o.SegmentEfConstruction = i
		case "ef":
			o.EfSearch = i
		case "seg":
			o.SegmentVectors = i
		case "merge":
			o.MergeVectorsMax = i
		case "reps":
			searchReps = i
		case "n":
			n = i
		case "":
		default:
			panic(fmt.Sprint("unknown ", k))
		}
	}
	benchFigure(b, n, o)
}

var searchReps int
