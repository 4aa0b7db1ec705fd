package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
)

func runSessions(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "sessions", args, map[string]func(context.Context, *cli, []string) error{
		"list":   sessionsList,
		"revoke": sessionsRevoke,
	})
}

type sessionJSON struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Device     string    `json:"device"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastActive time.Time `json:"last_active_at"`
	AuthTime   time.Time `json:"auth_time"`
	ExpiresAt  time.Time `json:"expires_at"`
	// MintedBy is the admin client that minted the session's tokens; empty for a sign-in.
	MintedBy string `json:"minted_by,omitempty"`
}

func sessionsList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("sessions list")
	email := fs.String("user", "", "the user's email (or --user-id)")
	userID := fs.String("user-id", "", "the user's id")
	pool := fs.String("pool", "", "the pool the email is in (default: default)")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		u, err := lookupUser(ctx, a, fs, *userID, *email, *pool)
		if err != nil {
			return err
		}
		list, err := a.store.ListBrowserSessions(ctx, u.ID, a.clock())
		if err != nil {
			return err
		}
		out := make([]sessionJSON, 0, len(list))
		for _, s := range list {
			out = append(out, sessionJSON{
				ID: s.ID, UserID: s.UserID, Device: request.DeviceName(s.UserAgent), IP: s.IP, UserAgent: s.UserAgent,
				CreatedAt: s.CreatedAt, LastActive: s.LastActiveAt, AuthTime: s.AuthTime, ExpiresAt: s.ExpiresAt,
				MintedBy: s.MintedBy,
			})
		}
		if *asJSON {
			return writeJSON(c, out)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tDEVICE\tIP\tSIGNED IN\tLAST ACTIVE\tMINTED BY")
		for _, s := range out {
			mintedBy := cmp.Or(s.MintedBy, "-")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Device, s.IP, s.CreatedAt.UTC().Format(time.RFC3339), s.LastActive.UTC().Format(time.RFC3339), mintedBy)
		}
		return tw.Flush()
	})
}

func sessionsRevoke(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("sessions revoke")
	id := fs.String("id", "", "the session to end")
	email := fs.String("user", "", "with --all: the user's email")
	all := fs.Bool("all", false, "end every session of --user")
	pool := fs.String("pool", "", "the pool the email is in (default: default)")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		switch {
		case *all:
			if *email == "" {
				return errors.New("--all needs --user EMAIL")
			}
			u, err := lookupUser(ctx, a, fs, "", *email, *pool)
			if err != nil {
				return err
			}
			n, err := a.store.EndUserBrowserSessions(ctx, u.ID, "", a.clock())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "ended %d session(s) of %s and revoked their refresh tokens\n", n, u.Email)
		default:
			sid := *id
			if sid == "" && fs.NArg() == 1 {
				sid = fs.Arg(0)
			}
			if sid == "" {
				return errors.New("give --id SESSION, or --user EMAIL --all")
			}
			if err := a.store.EndBrowserSession(ctx, sid, a.clock()); errors.Is(err, models.ErrNotFound) {
				return fmt.Errorf("no active session %q", sid)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "ended session %s and revoked its refresh tokens\n", sid)
		}
		return nil
	})
}
