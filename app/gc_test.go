package app

import "testing"

func TestGCSettingsLeaveOperatorsChoicesAlone(t *testing.T) {
	const hashing = 38 << 20
	tests := []struct {
		name        string
		env         map[string]string
		container   int64
		wantPercent int
		wantLimit   int64
	}{
		{"defaults: higher percent, limit above the hashing memory", nil, 0, serveGCPercent, 64<<20 + 2*hashing},
		{"roomy container: the same", nil, 8 << 30, serveGCPercent, 64<<20 + 2*hashing},
		{"small container: 90% of it", nil, 100 << 20, serveGCPercent, 90 << 20},
		{"GOGC set: nothing changes", map[string]string{"GOGC": "100"}, 0, -1, -1},
		{"GOGC=off set: nothing changes", map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, 0, -1, -1},
		{"GOMEMLIMIT set: only the percent", map[string]string{"GOMEMLIMIT": "512MiB"}, 0, serveGCPercent, -1},
		{"GOMEMLIMIT=off: no limit, so Go's percent too", map[string]string{"GOMEMLIMIT": "off"}, 0, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			percent, limit := gcSettings(func(k string) string { return tt.env[k] }, hashing, tt.container)
			if percent != tt.wantPercent || limit != tt.wantLimit {
				t.Fatalf("gcSettings = (%d, %d), want (%d, %d)", percent, limit, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}

func TestParseCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"536870912\n", 512 << 20},
		{"max\n", 0},
		{"9223372036854771712\n", 0}, // cgroup v1's "unlimited"
		{"", 0},
		{"-1", 0},
	}
	for _, tt := range tests {
		if got := parseCgroupMemoryLimit(tt.in); got != tt.want {
			t.Errorf("parseCgroupMemoryLimit(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
