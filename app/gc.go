package app

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// serveGCPercent is the garbage collector's target for the server: a collection when the heap has grown 400%
// past what survived the last one, instead of Go's 100%. A token request leaves almost nothing live but
// allocates steadily, so at 100% the collector runs several times a second for little; at 400% token endpoints
// serve more per CPU second for a little more RSS (docs/PERFORMANCE.md, "Figures behind the code").
const serveGCPercent = 400

// gcSettings is the collector configuration serve applies: GOGC percent and soft memory limit in bytes, each
// -1 for "leave Go's setting alone". An operator's GOGC or GOMEMLIMIT always wins, and the percent is raised only
// under a limit (ours or theirs: GOMEMLIMIT=off keeps Go's defaults). The limit stops the higher percent from
// multiplying heaps that are large for a reason: sign-ins hold hashingBytes of argon2id memory while every
// hashing slot is busy, and at 400% with no limit the authcode load's peak RSS doubled (docs/PERFORMANCE.md).
// Twice the hashing memory plus 64 MiB for everything else is room enough that the collector never has to chase
// the limit; in a container with less memory (containerBytes > 0), 90% of it.
func gcSettings(getenv func(string) string, hashingBytes, containerBytes int64) (percent int, limit int64) {
	if getenv("GOGC") != "" {
		return -1, -1
	}
	switch getenv("GOMEMLIMIT") {
	case "":
	case "off":
		return -1, -1
	default:
		return serveGCPercent, -1
	}
	limit = 64<<20 + 2*hashingBytes
	if containerBytes > 0 {
		limit = min(limit, containerBytes/10*9)
	}
	return serveGCPercent, limit
}

// applyGCSettings applies what gcSettings returned and logs what it changed.
func applyGCSettings(logger *slog.Logger, percent int, limit int64) {
	if percent < 0 {
		return
	}
	debug.SetGCPercent(percent)
	if limit < 0 {
		logger.Info("garbage collector tuned (set GOGC to choose yourself)", "gogc", percent)
		return
	}
	debug.SetMemoryLimit(limit)
	logger.Info("garbage collector tuned (set GOGC to choose yourself)", "gogc", percent, "memory_limit_mib", limit>>20)
}

// containerMemoryBytes is the memory limit of this process's cgroup (v2 memory.max, else v1
// memory.limit_in_bytes), or 0 when there is none or it cannot be read.
func containerMemoryBytes() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			return parseCgroupMemoryLimit(string(b))
		}
	}
	return 0
}

// parseCgroupMemoryLimit reads a cgroup memory limit file: a byte count, "max" (v2) or a huge number (v1) for none.
func parseCgroupMemoryLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0
	}
	return n
}
