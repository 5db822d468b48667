package main

// retrofit moves each vector towards its lexicon neighbours (Faruqui et
// al. 2015, "Retrofitting Word Vectors to Semantic Lexicons"): it
// minimises Σ_i α‖q_i − q̂_i‖² + Σ_(i,j) β_ij‖q_i − q_j‖² by iterating
//
//	q_i ← (α q̂_i + Σ_j β_ij q_j) / (α + Σ_j β_ij)
//
// with β_ij = w_ij / Σ_k w_ik (the paper's 1/degree, weighted), so a word's
// neighbours together pull as hard as its own distributional vector (α=1).
// Words without neighbours keep their vectors. The update is Jacobi style
// (every q_i from the previous round's vectors), which makes the result
// independent of the order words are visited. orig is not changed.
func retrofit(orig [][]float64, edges []edge, iters int, alpha float64) [][]float64 {
	n := len(orig)
	type nb struct {
		j int32
		w float64
	}
	adj := make([][]nb, n)
	wsum := make([]float64, n)
	for _, e := range edges {
		adj[e.a] = append(adj[e.a], nb{e.b, e.w})
		adj[e.b] = append(adj[e.b], nb{e.a, e.w})
		wsum[e.a] += e.w
		wsum[e.b] += e.w
	}
	cur := make([][]float64, n)
	next := make([][]float64, n)
	for i := range orig {
		cur[i] = append([]float64(nil), orig[i]...)
		next[i] = make([]float64, len(orig[i]))
	}
	for range iters {
		for i := range cur {
			dst := next[i]
			if len(adj[i]) == 0 {
				copy(dst, orig[i])
				continue
			}
			for d := range dst {
				dst[d] = alpha * orig[i][d]
			}
			for _, x := range adj[i] {
				b := x.w / wsum[i]
				for d, f := range cur[x.j] {
					// The conversion rounds the product, so that no
					// platform fuses it into a multiply-add and the build
					// stays bit-for-bit reproducible across machines.
					dst[d] += float64(b * f)
				}
			}
			// Σ_j β_ij is 1 by construction.
			for d := range dst {
				dst[d] /= alpha + 1
			}
		}
		cur, next = next, cur
	}
	return cur
}
