package store

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// Table stores values of type T, encoded as JSON, under Prefix in DS: one
// datastore entry per key. DS must be set; an empty Prefix means the root.
//
// Keys are arbitrary strings: they are encoded (base32hex, which keeps their
// byte order) so that a key containing "/" or ".." can neither nest under nor
// escape the prefix. Writes are followed by a Sync of the prefix, so once Put
// or Delete returns, the change survives a crash on any datastore that
// honours Sync.
type Table[T any] struct {
	DS     ds.Datastore
	Prefix ds.Key
}

var keyEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// prefix returns Prefix in clean form; ds.NewKey turns "" into "/".
func (t Table[T]) prefix() ds.Key { return ds.NewKey(t.Prefix.String()) }

// dsKey returns the datastore key of key. The empty key is refused because it
// would encode to the prefix itself.
func (t Table[T]) dsKey(key string) (ds.Key, error) {
	if key == "" {
		return ds.Key{}, fmt.Errorf("store %s: empty key", t.prefix())
	}
	return t.prefix().ChildString(keyEncoding.EncodeToString([]byte(key))), nil
}

// Put stores v under key, replacing any previous value.
func (t Table[T]) Put(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store %s %q: encode: %w", t.prefix(), key, err)
	}
	k, err := t.dsKey(key)
	if err != nil {
		return err
	}
	if err := t.DS.Put(ctx, k, b); err != nil {
		return fmt.Errorf("store %s %q: put: %w", t.prefix(), key, err)
	}
	if err := t.DS.Sync(ctx, t.prefix()); err != nil {
		return fmt.Errorf("store %s %q: sync: %w", t.prefix(), key, err)
	}
	return nil
}

// Get returns the value under key. A missing key gives an error matching
// ds.ErrNotFound.
func (t Table[T]) Get(ctx context.Context, key string) (T, error) {
	var v T
	k, err := t.dsKey(key)
	if err != nil {
		return v, err
	}
	b, err := t.DS.Get(ctx, k)
	if err != nil {
		return v, fmt.Errorf("store %s %q: %w", t.prefix(), key, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("store %s %q: decode: %w", t.prefix(), key, err)
	}
	return v, nil
}

// Delete removes key. Deleting a missing key is not an error.
func (t Table[T]) Delete(ctx context.Context, key string) error {
	k, err := t.dsKey(key)
	if err != nil {
		return err
	}
	if err := t.DS.Delete(ctx, k); err != nil {
		return fmt.Errorf("store %s %q: delete: %w", t.prefix(), key, err)
	}
	if err := t.DS.Sync(ctx, t.prefix()); err != nil {
		return fmt.Errorf("store %s %q: sync: %w", t.prefix(), key, err)
	}
	return nil
}

// List returns every value in the table, in the byte order of their keys.
func (t Table[T]) List(ctx context.Context) ([]T, error) {
	var out []T
	err := t.Each(ctx, func(_ string, v T) error {
		out = append(out, v)
		return nil
	})
	return out, err
}

// Each calls fn with every key and value in the table, in the byte order of
// the keys, and stops at the first error fn returns, returning it. Entries
// under a longer prefix (another table nested inside this one) are skipped.
func (t Table[T]) Each(ctx context.Context, fn func(key string, v T) error) error {
	prefix := t.prefix()
	res, err := t.DS.Query(ctx, query.Query{
		Prefix: prefix.String(),
		Orders: []query.Order{query.OrderByKey{}},
	})
	if err != nil {
		return fmt.Errorf("store %s: query: %w", prefix, err)
	}
	defer res.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, ok := res.NextSync()
		if !ok {
			return nil
		}
		if r.Error != nil {
			return fmt.Errorf("store %s: query: %w", prefix, r.Error)
		}
		k := ds.RawKey(r.Key)
		if !k.Parent().Equal(prefix) {
			continue
		}
		raw, err := keyEncoding.DecodeString(k.Name())
		if err != nil {
			continue // not written by a Table
		}
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return fmt.Errorf("store %s %q: decode: %w", prefix, raw, err)
		}
		if err := fn(string(raw), v); err != nil {
			return err
		}
	}
}
