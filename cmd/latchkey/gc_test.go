package main

import "testing"

func TestGCSettingsLeaveOperatorsChoicesAlone(t *testing.T) {
	const hashing = 38 << 20
	tests := []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"defaults: higher percent, limit above the hashing memory", nil, serveGCPercent, 64<<20 + 2*hashing},
		{"GOGC set: nothing changes", map[string]string{"GOGC": "100"}, -1, -1},
		{"GOGC=off set: nothing changes", map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, -1, -1},
		{"GOMEMLIMIT set: only the percent", map[string]string{"GOMEMLIMIT": "512MiB"}, serveGCPercent, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			percent, limit := gcSettings(func(k string) string { return tt.env[k] }, hashing)
			if percent != tt.wantPercent || limit != tt.wantLimit {
				t.Fatalf("gcSettings = (%d, %d), want (%d, %d)", percent, limit, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}
