package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/models"
)

func runAudit(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "audit", args, map[string]func(context.Context, *cli, []string) error{
		"list": auditList,
	})
}

// parseSince reads --since: a duration back from now ("24h") or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("--since: a duration back from now must not be negative")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (24h) or an RFC 3339 time (2026-01-02T15:04:05Z)", v)
	}
	return t, nil
}

func auditList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("audit list")
	since := fs.String("since", "", "only events since this long ago (24h) or this RFC 3339 time")
	user := fs.String("user", "", "only events of this user id")
	types := fs.String("type", "", "only these event types, comma separated (user.signed_in,token.issued)")
	pool := fs.String("pool", "", "only events in this pool")
	client := fs.String("client", "", "only events of this client id")
	limit := fs.Int("limit", 100, fmt.Sprintf("at most this many events, newest first (1..%d)", models.MaxAuditPage))
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		from, err := parseSince(*since, a.clock())
		if err != nil {
			return err
		}
		q := models.AuditQuery{Since: from, UserID: *user, ClientID: *client, Pool: *pool, Limit: *limit}
		for _, t := range strings.Split(*types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				q.Types = append(q.Types, t)
			}
		}
		if *limit < 1 || *limit > models.MaxAuditPage {
			return fmt.Errorf("--limit must be between 1 and %d", models.MaxAuditPage)
		}
		events, err := a.store.ListAuditEvents(ctx, q)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, events)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tTYPE\tPOOL\tUSER\tCLIENT\tACTOR\tIP\tREASON")
		for _, e := range events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Type, dash(e.Pool), dash(e.UserID),
				dash(e.ClientID), dash(e.Actor), dash(e.IP), dash(e.Reason))
		}
		return tw.Flush()
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
