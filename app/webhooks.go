package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/outbox"
)

// webhooks manages webhook subscriptions and their deliveries (models.Webhook.Validate owns the rules; this only
// maps flags). Deliveries go out through the outbox of the running servers.
func runWebhooks(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "webhooks", args, map[string]func(context.Context, *cli, []string) error{
		"create":        webhooksCreate,
		"list":          webhooksList,
		"update":        webhooksUpdate,
		"rotate-secret": webhooksRotateSecret,
		"delete":        webhooksDelete,
		"deliveries":    webhooksDeliveries,
		"redeliver":     webhooksRedeliver,
	})
}

// webhookNotFound names what was looked for.
func webhookNotFound(err error, id string) error {
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no webhook %q", id)
	}
	return err
}

func webhooksCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks create")
	u := fs.String("url", "", "where deliveries are POSTed (https; http is allowed but the events are then readable on the way)")
	events := fs.String("events", "", "event types, comma-separated: "+strings.Join(models.WebhookEventTypeNames(), ", "))
	pool := fs.String("pool", "", "only this pool's events (default: every pool)")
	disabled := fs.Bool("disabled", false, "create it disabled (no deliveries until enabled)")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		id, err := models.NewWebhookID()
		if err != nil {
			return err
		}
		secret, sealed, err := outbox.NewWebhookSecrets(a.secret).New(id)
		if err != nil {
			return err
		}
		w := &models.Webhook{ID: id, URL: *u, Events: splitList(*events), Pool: *pool, SealedSecret: sealed, Enabled: !*disabled}
		if err := a.store.CreateWebhook(ctx, w); errors.Is(err, models.ErrInvalid) {
			return validationError(err)
		} else if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, struct {
				*models.Webhook
				Secret string `json:"secret"`
			}{w, secret})
		}
		fmt.Fprintf(c.stdout, "created webhook %s -> %s (%s)\nsecret (shown once; verify the Latchkey-Signature header with it): %s\n",
			w.ID, w.URL, strings.Join(w.Events, ", "), secret)
		if pu, _ := url.Parse(w.URL); pu != nil && pu.Scheme == "http" {
			fmt.Fprintln(c.stderr, "warning: the URL is http: deliveries are signed, but anyone on the way can read them")
		}
		return nil
	})
}

func webhooksList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks list")
	pool := fs.String("pool", "", "only the webhooks of this pool")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		var pools []string
		if *pool != "" {
			pools = []string{*pool}
		}
		list, err := a.store.ListWebhooks(ctx, pools)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, list)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOOL\tENABLED\tURL\tEVENTS")
		for _, w := range list {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", w.ID, orAll(w.Pool), w.Enabled, w.URL, strings.Join(w.Events, ","))
		}
		return tw.Flush()
	})
}

func orAll(pool string) string {
	if pool == "" {
		return "(all)"
	}
	return pool
}

func webhooksUpdate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks update")
	id := fs.String("id", "", "webhook id (or give it as the argument)")
	u := fs.String("url", "", "new URL")
	events := fs.String("events", "", "new event types, comma-separated (replace the old ones)")
	enable := fs.Bool("enable", false, "enable it")
	disable := fs.Bool("disable", false, "disable it: no new deliveries; pending ones wait (and may die; redeliver them)")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		wid, err := idArg(fs, *id, "webhook id")
		if err != nil {
			return err
		}
		if *enable && *disable {
			return errors.New("--enable and --disable contradict each other")
		}
		w, err := a.store.WebhookByID(ctx, wid)
		if err != nil {
			return webhookNotFound(err, wid)
		}
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if given["url"] {
			w.URL = *u
		}
		if given["events"] {
			w.Events = splitList(*events)
		}
		if *enable || *disable {
			w.Enabled = *enable
		}
		if err := a.store.UpdateWebhook(ctx, w); errors.Is(err, models.ErrInvalid) {
			return validationError(err)
		} else if err != nil {
			return webhookNotFound(err, wid)
		}
		if *asJSON {
			return writeJSON(c, w)
		}
		fmt.Fprintf(c.stdout, "updated webhook %s -> %s (%s), enabled: %t\n", w.ID, w.URL, strings.Join(w.Events, ", "), w.Enabled)
		return nil
	})
}

func webhooksRotateSecret(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks rotate-secret")
	id := fs.String("id", "", "webhook id (or give it as the argument)")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		wid, err := idArg(fs, *id, "webhook id")
		if err != nil {
			return err
		}
		secret, sealed, err := outbox.NewWebhookSecrets(a.secret).New(wid)
		if err != nil {
			return err
		}
		if err := a.store.SetWebhookSecret(ctx, wid, sealed); err != nil {
			return webhookNotFound(err, wid)
		}
		fmt.Fprintf(c.stdout, "new secret of webhook %s (shown once; deliveries are signed with it from now on, pending ones too): %s\n", wid, secret)
		return nil
	})
}

func webhooksDelete(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks delete")
	id := fs.String("id", "", "webhook id (or give it as the argument)")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		wid, err := idArg(fs, *id, "webhook id")
		if err != nil {
			return err
		}
		if err := a.store.DeleteWebhook(ctx, wid); err != nil {
			return webhookNotFound(err, wid)
		}
		fmt.Fprintf(c.stdout, "deleted webhook %s and its deliveries\n", wid)
		return nil
	})
}

// deliveryState is what happened to a delivery so far.
func deliveryState(m models.OutboxMessage) string {
	switch {
	case m.DeliveredAt != nil:
		return "delivered"
	case m.DeadAt != nil:
		return "dead"
	default:
		return "pending"
	}
}

func webhooksDeliveries(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks deliveries")
	id := fs.String("id", "", "webhook id (or give it as the argument)")
	limit := fs.Int("limit", 50, "at most this many, newest first")
	cursor := fs.String("cursor", "", "continue after this cursor (printed at the end of a full page)")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		wid, err := idArg(fs, *id, "webhook id")
		if err != nil {
			return err
		}
		if _, err := a.store.WebhookByID(ctx, wid); err != nil {
			return webhookNotFound(err, wid)
		}
		list, next, err := a.store.WebhookDeliveries(ctx, wid, *cursor, max(1, min(*limit, 1000)))
		if errors.Is(err, models.ErrInvalid) {
			return validationError(err)
		} else if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, map[string]any{"deliveries": list, "next_cursor": next})
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tATTEMPTS\tCREATED\tLAST ERROR")
		for _, m := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.ID, deliveryState(m), m.Attempts, m.CreatedAt.Format(time.RFC3339), m.LastError)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(c.stdout, "more: --cursor %s\n", next)
		}
		return nil
	})
}

func webhooksRedeliver(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("webhooks redeliver")
	id := fs.String("id", "", "delivery id, obx_… (or give it as the argument)")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		did, err := idArg(fs, *id, "delivery id")
		if err != nil {
			return err
		}
		newID, err := a.store.RedeliverWebhook(ctx, did, a.clock())
		switch {
		case errors.Is(err, models.ErrNotFound):
			return fmt.Errorf("no webhook delivery %q", did)
		case errors.Is(err, models.ErrConflict):
			return fmt.Errorf("delivery %s is still pending: it will be sent anyway", did)
		case err != nil:
			return err
		}
		fmt.Fprintf(c.stdout, "queued delivery %s (again %s)\n", newID, did)
		return nil
	})
}
