package main

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
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tPUBLISHED UNTIL")
	for _, k := range list {
		until := "-"
		if k.NotAfter != nil {
			until = k.NotAfter.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, k.CreatedAt.UTC().Format(time.RFC3339), until)
	}
	return tw.Flush()
}

func keysList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("keys list")
	asJSON := fs.Bool("json", false, "print JSON")
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
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		if _, err := a.keys.Rotate(ctx); err != nil {
			return err
		}
		list, err := a.keys.List(ctx)
		if err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintln(c.stdout, "rotated; running servers pick up the new keys within their refresh interval (30s). Previous public keys stay published until tokens they signed have expired.")
		}
		return printKeys(c, list, *asJSON)
	})
}
