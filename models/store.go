// Package models is Latchkey's persistence layer: the gorm-backed Store that implements fosite's storage
// interfaces, clients, users and signing-key rows, on SQLite or PostgreSQL. Callers never see gorm.
package models

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite", for the read pool
	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers postgresDriverName (gorm's dialector imports it too)
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/latchkey/latchkey/keys"
)

// ErrNotFound is returned for every "not found"; it is fosite's, so fosite's handlers recognise it.
var ErrNotFound = fosite.ErrNotFound

// ErrConflict is returned when a row with the same identity (client id, user email) already exists.
var ErrConflict = errors.New("already exists")

// ErrInvalid is returned (wrapped, with the reason) when an argument fails validation.
var ErrInvalid = errors.New("invalid")

// Compile-time checks of every storage interface the Store must satisfy. Compose checks most of these at
// start-up, but PAR only per request.
var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ fosite.PARStorage                  = (*Store)(nil)
	_ fositestorage.Transactional        = (*Store)(nil)
	_ keys.Store                         = (*Store)(nil)
)

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"

	sqliteDriverName   = "sqlite" // glebarez/go-sqlite, the driver gorm's SQLite dialector uses
	postgresDriverName = "pgx"    // jackc/pgx's database/sql driver, which gorm's PostgreSQL dialector uses
)

// Options tunes Open.
type Options struct {
	// Logger receives slow-query warnings (SQL text only, never parameter values). nil: nothing is logged.
	Logger *slog.Logger
	// MaxOpenConns caps the connection pool. 0 = default: SQLite 1 (one writer), PostgreSQL 20.
	MaxOpenConns int
	// NewSession returns an empty session to decode a stored session into where fosite passes none
	// (GetPARSession). nil: *openid.DefaultSession.
	NewSession func() fosite.Session
	// Now is the store's clock: the time it stamps rows with and expires them by. nil: time.Now. The app passes
	// the one clock it gives the provider and the handlers too (their Now fields), so a test moves them together.
	Now func() time.Time
	// AuditRetention is how long audit events are kept: DeleteExpiredRound deletes older ones. 0: forever.
	AuditRetention time.Duration
}

// Store is the database. It is safe for concurrent use.
type Store struct {
	db    *gorm.DB
	sqlDB *sql.DB
	// readDB serves the token and client lookups outside transactions. On SQLite it is a separate pool of
	// read-only connections: WAL lets them read while the single writer writes, so introspection does not
	// queue behind issuance. On PostgreSQL it is sqlDB.
	readDB *sql.DB
	// maintDB runs expired-row cleanup. On PostgreSQL it is one connection of its own: in the shared pool each
	// cleanup statement queued behind every waiting request, which under load cut cleanup to a fraction of what
	// the database can delete. On SQLite it is sqlDB, whose single connection is the only writer.
	maintDB    *sql.DB
	dialect    string
	sqliteDSN  string // the SQLite file's DSN, for a connection of its own (BackupTo); "" on PostgreSQL
	newSession func() fosite.Session
	now        func() time.Time
	clients    clientCache
	// tokenBatch groups SQLite's access token writes into shared transactions (token_batch.go).
	tokenBatch tokenBatcher
	// auditRetention is Options.AuditRetention.
	auditRetention time.Duration
}

// Open connects to url: "sqlite://PATH" (relative or absolute) or "postgres://..." / "postgresql://...".
// It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	var (
		dialector gorm.Dialector
		dialect   string
		maxConns  = opts.MaxOpenConns
		readDSN   string
	)
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		dsn, err := sqliteDSN(path)
		if err != nil {
			return nil, err
		}
		dialector, dialect = sqlite.Open(dsn), dialectSQLite
		if maxConns == 0 {
			maxConns = 1
		}
		if !strings.Contains(dsn, ":memory:") {
			readDSN = dsn + "&_pragma=query_only(1)"
			if err := restrictSQLiteFiles(path, opts.Logger); err != nil {
				return nil, err
			}
		}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dialector, dialect = postgres.Open(url), dialectPostgres
		if maxConns == 0 {
			maxConns = 20
		}
	default:
		scheme, _, ok := strings.Cut(url, "://")
		if !ok {
			scheme = "(none)"
		}
		return nil, fmt.Errorf("open database: unsupported URL scheme %q (want sqlite:// or postgres://)", scheme)
	}

	now := opts.Now
	if now == nil {
		now = time.Now
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return dbTime(now()) },
		Logger:                 newGormLogger(opts.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	// Every gorm statement, and the hand-written token SQL run on s.pool, goes through the text check.
	guard := &guardedPool{db: sqlDB}
	db.ConnPool, db.Statement.ConnPool = guard, guard
	s := &Store{db: db, sqlDB: sqlDB, readDB: sqlDB, maintDB: sqlDB, dialect: dialect, newSession: opts.NewSession, now: now,
		auditRetention: opts.AuditRetention}
	if dialect == dialectPostgres {
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		// sql.Open only parses the URL; the connection is made on first use, so an idle node holds none.
		if s.maintDB, err = sql.Open(postgresDriverName, url); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open postgres maintenance connection: %w", err)
		}
		s.maintDB.SetMaxOpenConns(1)
		s.maintDB.SetMaxIdleConns(1)
		s.maintDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if readDSN != "" {
		s.sqliteDSN = strings.TrimSuffix(readDSN, "&_pragma=query_only(1)")
		if s.readDB, err = sql.Open(sqliteDriverName, readDSN); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open sqlite read pool: %w", err)
		}
		n := max(2, runtime.NumCPU())
		s.readDB.SetMaxOpenConns(n)
		s.readDB.SetMaxIdleConns(n)
	}
	if s.newSession == nil {
		s.newSession = func() fosite.Session { return new(openid.DefaultSession) }
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close() // every pool Open made, not only the main one
		return nil, err
	}
	return s, nil
}

// sqliteDSN builds the driver DSN: WAL, busy_timeout 5000, foreign keys, synchronous NORMAL, and
// BEGIN IMMEDIATE so a transaction takes the write lock up front (another process waits on busy_timeout
// instead of failing an upgrade from read to write).
func sqliteDSN(path string) (string, error) {
	if path == "" {
		return "", errors.New("open database: sqlite:// URL has no path")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return "", errors.New("open database: sqlite:// URL takes no query parameters")
	}
	if path != ":memory:" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("open database: %w", err)
		}
		path = abs
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	// No "file:" prefix: the driver then passes the path to SQLite as a plain file name, not a URI.
	return path + "?" + q.Encode(), nil
}

// restrictSQLiteFiles makes the database file readable by its owner only, like the secret file beside it: it
// creates the file mode 0600 before SQLite opens it (SQLite gives the -wal and -shm files the database file's
// mode), and takes group and other access away from an existing database and its -wal and -shm.
func restrictSQLiteFiles(path string, logger *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("open database: restrict %s to its owner: %w", p, err)
			}
			if logger != nil {
				logger.Warn("database file was readable by others; restricted it to its owner", "file", p, "was", perm.String())
			}
		}
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() error {
	var err error
	for _, extra := range []*sql.DB{s.readDB, s.maintDB} {
		if extra != s.sqlDB {
			err = errors.Join(err, extra.Close())
		}
	}
	return errors.Join(s.sqlDB.Close(), err)
}

// Ping checks the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.dialect, err)
	}
	return nil
}

// txKey is per store, so a transaction of one Store is never used by another.
type txKey struct{ s *Store }

// BeginTX starts a transaction and returns a context carrying it; every Store method called with that
// context (or one derived from it) runs inside it. Nested BeginTX is an error.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{s}).(*gorm.DB); ok {
		return ctx, errors.New("begin transaction: a transaction is already in progress in this context")
	}
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, fmt.Errorf("begin transaction: %w", mapErr(tx.Error))
	}
	return context.WithValue(ctx, txKey{s}, tx), nil
}

// Commit commits the transaction in ctx.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{s}).(*gorm.DB)
	if !ok {
		return errors.New("commit: no transaction in context")
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// Rollback rolls back the transaction in ctx. Rolling back a finished transaction is not an error, so it is
// safe in a deferred cleanup after Commit.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{s}).(*gorm.DB)
	if !ok {
		return errors.New("rollback: no transaction in context")
	}
	if err := tx.Rollback().Error; err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", mapErr(err))
	}
	return nil
}

// conn returns the transaction in ctx if there is one, else the pool. Every query goes through it: with
// SQLite's single connection, a query that bypassed the caller's transaction would wait for itself.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{s}).(*gorm.DB); ok {
		return tx.WithContext(ctx)
	}
	return s.db.WithContext(ctx)
}

// inTx runs fn atomically: in a new transaction, or in a savepoint of the transaction in ctx, so a failure
// changes nothing even inside the caller's transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.conn(ctx).Transaction(fn)
}

// mapErr turns driver errors into the errors callers check for: not found → fosite.ErrNotFound,
// PostgreSQL serialization failure or deadlock → fosite.ErrSerializationFailure, text PostgreSQL cannot hold →
// ErrInvalid.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fosite.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01":
			return fmt.Errorf("%w: %s", fosite.ErrSerializationFailure, pgErr.Message)
		case "22021", "22P05": // text the encoding cannot hold, from a statement that bypassed guardedPool
			return fmt.Errorf("%w: %s", ErrInvalid, pgErr.Message)
		}
	}
	return err
}

// hashKey is the stored key of a token signature, request URI or jti: hex SHA-256. Raw values never reach
// the database.
func hashKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// dbTime normalises a time for storage: UTC (so SQLite's text timestamps compare correctly) at microsecond
// precision (PostgreSQL's).
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := dbTime(t)
	return &u
}

// gormLogger reports slow queries at Warn with the SQL text only; parameter values are never logged.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func newGormLogger(l *slog.Logger) gormlogger.Interface {
	if l == nil {
		return gormlogger.Discard
	}
	return &gormLogger{log: l, slow: 500 * time.Millisecond}
}

func (l *gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }
func (l *gormLogger) Info(context.Context, string, ...interface{})     {}
func (l *gormLogger) Warn(ctx context.Context, msg string, _ ...interface{}) {
	l.log.WarnContext(ctx, "database: "+msg)
}
func (l *gormLogger) Error(ctx context.Context, msg string, _ ...interface{}) {
	l.log.ErrorContext(ctx, "database: "+msg)
}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), _ error) {
	if elapsed := time.Since(begin); elapsed >= l.slow {
		sqlText, rows := fc()
		if strings.Contains(sqlText, "pg_advisory_xact_lock") {
			return // waiting for another node's migration is the point of that lock, not a slow query
		}
		l.log.WarnContext(ctx, "slow database query", "elapsed", elapsed, "rows", rows, "sql", sqlText)
	}
}

// ParamsFilter drops parameter values so logged SQL carries placeholders only.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...interface{}) (string, []interface{}) {
	return sql, nil
}
