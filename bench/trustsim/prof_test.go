package main

import "testing"

func BenchmarkWorst(b *testing.B) {
	for b.Loop() {
		cfg := defaults()
		cfg.Model, cfg.Fraction, cfg.Trust, cfg.Smear = 'C', 0.7, true, 1
		simulate(cfg)
	}
}
