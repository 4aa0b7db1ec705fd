package oauth

import (
	"context"

	"github.com/latchkey/latchkey/models"
)

// ClientCache lets client authentication answer from cached client rows that the database confirms in the
// statement that uses them (models.Store). nil: every request reads its client row.
type ClientCache interface {
	WithClientCache(ctx context.Context) (context.Context, *models.ClientCheck)
}

// withClientCache runs attempt with cached client rows allowed, and once more reading them fresh when its
// outcome rested on a cached row the database did not confirm: a rotated secret, a deleted client or changed
// metadata then answers exactly as it would without the cache. Attempts that touched the database confirmed or
// refused the row in their first statement, before writing anything, so running again repeats no side effect.
func withClientCache(ctx context.Context, cache ClientCache, attempt func(context.Context) error) error {
	if cache == nil {
		return attempt(ctx)
	}
	cctx, check := cache.WithClientCache(ctx)
	err := attempt(cctx)
	if !check.Used() {
		return err
	}
	if err == nil {
		if check.Confirm(cctx) == nil {
			return nil
		}
	} else if !check.Unconfirmed() {
		return err
	}
	return attempt(ctx)
}
