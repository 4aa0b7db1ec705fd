// Package storetest is the storage contract suite: every behaviour fosite and Latchkey rely on, run once
// against each backend.
package storetest

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// deadline bounds every case's context; runDeadline, shorter, bounds the concurrent cases, so a deadlock
// fails with goroutine stacks instead of hanging CI.
const (
	deadline    = 30 * time.Second
	runDeadline = 20 * time.Second
)

// testCase is one case of the suite: a name that says the behaviour, and the case, run on a fresh store.
type testCase struct {
	name string
	run  func(t *testing.T, s *models.Store)
}

// Run runs the contract suite. newStore returns a fresh, migrated store, closed by the test's cleanup. Each subject
// keeps its cases in its own file; a new subject adds its list here.
func Run(t *testing.T, newStore func(t *testing.T) *models.Store) {
	seen := map[string]bool{}
	for _, group := range [][]testCase{
		schemaCases(),
		tokenCases(),
		grantCases(),
		refreshPolicyCases(),
		transactionCases(),
		cleanupCases(),
		clientCases(),
		clientSettingsCases(),
		userCases(),
		poolCases(),
		sessionCases(),
		mintedCases(),
		signInCases(),
		throttleCases(),
		signingKeyCases(),
		outboxCases(),
		mfaCases(),
		passkeyCases(),
		mailTokenCases(),
		accountCases(),
	} {
		for _, tc := range group {
			if seen[tc.name] {
				t.Fatalf("two cases are named %q", tc.name)
			}
			seen[tc.name] = true
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, newStore(t))
			})
		}
	}
}
