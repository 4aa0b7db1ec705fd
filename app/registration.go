package app

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// clientsRegistrationToken issues an initial access token for dynamic client registration (RFC 7591 §3, with
// LATCHKEY_REGISTRATION=token): good for --max-uses registrations until --ttl has passed. Only its hash is kept,
// so it is shown once.
func clientsRegistrationToken(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients registration-token")
	ttl := fs.Duration("ttl", time.Hour, "how long the token may be used")
	uses := fs.Int("max-uses", 1, fmt.Sprintf("how many clients it may register (1 to %d)", models.MaxInitialTokenUses))
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		if *ttl <= 0 {
			return fmt.Errorf("--ttl: must be positive")
		}
		if *uses < 1 || *uses > models.MaxInitialTokenUses {
			return fmt.Errorf("--max-uses: must be between 1 and %d", models.MaxInitialTokenUses)
		}
		if a.cfg.Registration != "token" {
			fmt.Fprintf(c.stderr, "note: LATCHKEY_REGISTRATION is %q here; the token is accepted only where it is \"token\"\n", a.cfg.Registration)
		}
		token := provider.GenerateClientSecret()
		expires := a.clock().Add(*ttl).Truncate(time.Second)
		if err := a.store.CreateInitialAccessToken(ctx, provider.NewRegistrationTokenHasher(a.secret).HashSecret(token), *uses, expires); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, map[string]any{"initial_access_token": token, "expires_at": expires.Unix(), "max_uses": *uses})
		}
		fmt.Fprintf(c.stdout, "initial_access_token: %s\nexpires_at:           %s\nmax_uses:             %d\n(shown once; send it as Authorization: Bearer to %s%s)\n",
			token, expires.UTC().Format(time.RFC3339), *uses, a.cfg.Issuer, provider.PathRegister)
		return nil
	})
}
