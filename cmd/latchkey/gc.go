package main

import "runtime/debug"

// serveGCPercent is the garbage collector's target for the server: a collection when the heap has grown 400%
// past what survived the last one, instead of Go's 100%. A token request leaves almost nothing live (the heap
// that survives under full load is ~10 MiB) but allocates steadily, so at 100% the collector ran several times
// a second and took about a tenth of the server's CPU; at 400% token endpoints serve 10–25% more per CPU second
// for ~20 MiB more RSS (docs/PERFORMANCE.md).
const serveGCPercent = 400

// gcSettings is the collector configuration serve applies: GOGC percent and soft memory limit in bytes, each
// -1 for "leave Go's setting alone". An operator's GOGC or GOMEMLIMIT always wins. The limit stops the higher
// percent from multiplying heaps that are large for a reason: sign-ins hold hashingBytes of argon2id memory
// while every hashing slot is busy, and at 400% with no limit the harness's authcode load took peak RSS from
// 153 to 329 MiB (172 MiB with the limit). Twice the hashing memory plus 64 MiB for everything else is room
// enough that the collector never has to chase the limit.
func gcSettings(getenv func(string) string, hashingBytes int64) (percent int, limit int64) {
	if getenv("GOGC") != "" {
		return -1, -1
	}
	if getenv("GOMEMLIMIT") != "" {
		return serveGCPercent, -1
	}
	return serveGCPercent, 64<<20 + 2*hashingBytes
}

// applyGCSettings applies what gcSettings returned.
func applyGCSettings(percent int, limit int64) {
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}
