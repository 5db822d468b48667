package checks

// Verdict runs every checker of a history: linearizability per key, then
// durability and atomicity. It returns the linearizability result (for its
// figures and report) and every finding, that check's first.
func Verdict(h *History, opts LinOptions) (LinResult, []Finding) {
	lin := CheckLinearizable(h, opts)
	var findings []Finding
	if f := lin.Finding(); f != nil {
		findings = append(findings, *f)
	}
	findings = append(findings, CheckDurability(h)...)
	findings = append(findings, CheckAtomicity(h)...)
	return lin, findings
}
