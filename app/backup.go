package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey/models"
)

// runBackup copies a SQLite database while the server runs (models.Store.BackupTo).
func runBackup(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("backup")
	to := fs.String("to", "", "the file to write the copy to (required); it must not exist unless --force")
	force := fs.Bool("force", false, "replace the file if it exists")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		if *to == "" {
			return errors.New("--to FILE is required (hint: latchkey backup --to latchkey-$(date +%F).db)")
		}
		n, err := a.store.BackupTo(ctx, *to, *force)
		if errors.Is(err, models.ErrBackupUnsupported) {
			return fmt.Errorf("%w (hint: pg_dump -Fc \"$LATCHKEY_DATABASE_URL\" > latchkey.dump)", err)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "backed up to %s (%d bytes)\n", *to, n)
		fmt.Fprintln(c.stdout, "keep LATCHKEY_SECRET (or the .secret file beside the database) with it, apart from it: without the secret the copy's keys and client secrets cannot be used")
		return nil
	})
}
