package app

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/keys"
)

func runKeys(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "keys", args, map[string]func(context.Context, *cli, []string) error{
		"list":   keysList,
		"rotate": keysRotate,
	})
}

func printKeys(c *cli, list []keys.KeyInfo, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []keys.KeyInfo{}
		}
		return writeJSON(c, list)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tACTIVATES\tRETIRES\tPUBLISHED UNTIL")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, k.ActivatesAt.UTC().Format(time.RFC3339),
			formatOptionalTime(k.RetiresAt), formatOptionalTime(k.PublishedUntil))
	}
	return tw.Flush()
}

func formatOptionalTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keysList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("keys list")
	asJSON := fs.Bool("json", false, "print JSON: one object per key with kid, alg, state (next, active, retired), activates_at, retires_at")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		list, err := a.keys.List(ctx)
		if err != nil {
			return err
		}
		return printKeys(c, list, *asJSON)
	})
}

func keysRotate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("keys rotate")
	asJSON := fs.Bool("json", false, "print JSON: one object per key with kid, alg, state (next, active, retired), activates_at, retires_at")
	now := fs.Bool("now", false, "emergency (a key may be compromised): sign with the new keys at once; this breaks caches: verifiers holding a cached JWKS reject the new tokens until their copy expires")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		rotate := a.keys.Rotate
		if *now {
			rotate = a.keys.RotateNow
		}
		scheduled, err := rotate(ctx)
		if err != nil {
			return err
		}
		list, err := a.keys.List(ctx)
		if err != nil {
			return err
		}
		if !*asJSON {
			if *now {
				fmt.Fprintln(c.stdout, "rotated now: the new keys sign at once (each server switches at its next reload, or when it meets the new kid). This breaks caches: verifiers holding a cached JWKS reject tokens signed with the new keys until their copy expires (up to LATCHKEY_JWKS_MAX_AGE). The retired keys stay published until tokens they signed have expired.")
			} else if len(scheduled) > 0 {
				fmt.Fprintf(c.stdout, "scheduled: the new keys are published now and sign from %s, in %v, once every server has reloaded (LATCHKEY_KEY_RELOAD_INTERVAL) and every cached JWKS has expired (LATCHKEY_JWKS_MAX_AGE). The current keys sign until then, and stay published until tokens they signed have expired.\n",
					scheduled[0].ActivatesAt.UTC().Format(time.RFC3339), a.keys.ActivationDelay())
			}
		}
		return printKeys(c, list, *asJSON)
	})
}
