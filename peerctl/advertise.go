package peerctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

// maxResourceFile caps a resource file. A resource at every limit of the
// model is far smaller; the cap only stops peerctl reading a wrong file.
const maxResourceFile = 1 << 20

// advertiseFlags are advertise's resource flags. Each one names the field of
// resource.Resource it sets.
type advertiseFlags struct {
	id          string
	file        string
	kind        string
	name        string
	desc        string
	tags        []string
	attrs       []string
	accessType  string
	access      string
	service     string
	derivedFrom []string
	expires     string
	handle      string
}

// resourceFlags are the flags that describe a resource, which -f replaces.
var resourceFlags = []string{"kind", "name", "desc", "tag", "attr", "access-type", "access", "service", "derived-from", "expires", "handle"}

func (a *app) advertiseCommand() *cobra.Command {
	var f advertiseFlags
	cmd := &cobra.Command{
		Use:   "advertise (--kind K --name N [flags] | -f FILE) [--id ID]",
		Short: "Advertise a resource, or edit one with --id",
		Long: `Advertise a resource: describe it with flags, or in a JSON or TOML file with -f
(the format is chosen by the file's extension; unknown fields are an error).

With --id, edit the resource of that ID instead: the fields given replace
the resource's, and the rest is kept. With -f and --id, the file replaces the
whole resource.

--service HOST:PORT offers a TCP service that this daemon tunnels to: it is
short for --access-type tcp --access HOST:PORT. The address stays on this
machine; consumers reach the service with 'peerctl connect --forward'.

A file has the fields of 'peerctl ls -o json': id, handle, kind, name,
description, tags, attrs, access {type, value}, derived_from and expires
(an RFC 3339 time, or a duration from now such as "720h"), and service
(HOST:PORT, short for access {type = "tcp", value = HOST:PORT}). Attribute
values may be strings, numbers or booleans; nested tables become dotted
keys. The fields owner, seq and updated are set by the daemon and ignored.`,
		Example: `  peerctl advertise --kind service --name "inference API" --tag gpu --service 127.0.0.1:8080
  peerctl advertise --kind compute --name "A100 box" --tag gpu --attr gpu.count=2 \
      --access-type url --access https://gpu.example.org
  peerctl advertise -f gpu.toml
  peerctl advertise --id bafkrei... --tag gpu --tag cuda`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := f.resource(ctx, cmd, c, time.Now())
				if err != nil {
					return err
				}
				res, err := c.Advertise(ctx, r)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(res)
				}
				_, err = fmt.Fprintf(a.stdout, "advertised %s (seq %d)\n", res.ID, res.Seq)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "", "edit the resource with this ID")
	fl.StringVarP(&f.file, "file", "f", "", "read the resource from a .json or .toml file")
	fl.StringVar(&f.kind, "kind", "", "kind: service, dataset, compute, model, skill, person, file or any lowercase word")
	fl.StringVar(&f.name, "name", "", "name")
	fl.StringVar(&f.desc, "desc", "", "description")
	fl.StringSliceVar(&f.tags, "tag", nil, "tag (repeat, or separate with commas)")
	fl.StringArrayVar(&f.attrs, "attr", nil, "attribute KEY=VALUE (repeat)")
	fl.StringVar(&f.accessType, "access-type", "", "how to reach it: tcp, libp2p, url or contact")
	fl.StringVar(&f.access, "access", "", "the address, protocol ID, URL or contact, by --access-type")
	fl.StringVar(&f.service, "service", "", "a TCP service HOST:PORT on this machine that consumers reach through tunnels (short for --access-type tcp --access HOST:PORT)")
	fl.StringSliceVar(&f.derivedFrom, "derived-from", nil, "ID of a resource this one builds on (repeat)")
	fl.StringVar(&f.expires, "expires", "", `when it expires: a duration from now ("720h"), an RFC 3339 time, or "never"`)
	fl.StringVar(&f.handle, "handle", "", "your local name for it, from which its ID is derived (default: made up)")
	cmd.MarkFlagFilename("file", "json", "toml")
	cmd.RegisterFlagCompletionFunc("access-type", cobra.FixedCompletions(
		[]string{resource.AccessTCP, resource.AccessLibp2p, resource.AccessURL, resource.AccessContact}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(
		[]string{resource.KindService, resource.KindDataset, resource.KindCompute, resource.KindModel, resource.KindSkill, resource.KindPerson, resource.KindFile},
		cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("id", a.completeOwnIDs)
	cmd.RegisterFlagCompletionFunc("service", cobra.NoFileCompletions)
	return cmd
}

// resource builds the resource to advertise from the flags: from the file,
// from the flags alone, or from the daemon's copy of --id with the flags
// given applied to it.
func (f *advertiseFlags) resource(ctx context.Context, cmd *cobra.Command, c *client.Client, now time.Time) (resource.Resource, error) {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if changed("service") {
		for _, other := range []string{"access-type", "access"} {
			if changed(other) {
				return resource.Resource{}, usageErrorf("--service cannot be combined with --%s: it sets the access to tcp HOST:PORT", other)
			}
		}
		if err := checkServiceAddr(f.service); err != nil {
			return resource.Resource{}, usageErrorf("--service %v", err)
		}
	}
	if f.file != "" {
		if slices.ContainsFunc(resourceFlags, changed) {
			return resource.Resource{}, usageErrorf("-f cannot be combined with --%s: put the resource's fields in the file", resourceFlags[slices.IndexFunc(resourceFlags, changed)])
		}
		r, err := readResourceFile(f.file, now)
		if err != nil {
			return resource.Resource{}, err
		}
		if f.id != "" {
			if r.ID != "" && r.ID != f.id {
				return resource.Resource{}, usageErrorf("--id %s does not match the id %s in %s", f.id, r.ID, f.file)
			}
			r.ID = f.id
		}
		return r, nil
	}

	var r resource.Resource
	if f.id != "" {
		own, err := c.Resources(ctx)
		if err != nil {
			return resource.Resource{}, err
		}
		i := slices.IndexFunc(own, func(r resource.Resource) bool { return r.ID == f.id })
		if i < 0 {
			return resource.Resource{}, fmt.Errorf("this daemon has no resource %s (see 'peerctl ls')", f.id)
		}
		r = own[i]
	} else if !changed("kind") || !changed("name") {
		return resource.Resource{}, usageErrorf("advertise needs --kind and --name, or -f FILE")
	}
	if err := f.apply(&r, changed, now); err != nil {
		return resource.Resource{}, err
	}
	return r, nil
}

// apply sets the fields of r whose flags were given.
func (f *advertiseFlags) apply(r *resource.Resource, changed func(string) bool, now time.Time) error {
	if changed("kind") {
		r.Kind = f.kind
	}
	if changed("name") {
		r.Name = f.name
	}
	if changed("desc") {
		r.Description = f.desc
	}
	if changed("tag") {
		r.Tags = f.tags
	}
	if changed("attr") {
		attrs := make(map[string]string, len(f.attrs))
		for _, kv := range f.attrs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return usageErrorf("--attr %q: want KEY=VALUE", kv)
			}
			attrs[strings.TrimSpace(k)] = v
		}
		r.Attrs = attrs
	}
	if changed("access-type") {
		r.Access.Type = f.accessType
	}
	if changed("access") {
		if r.Access.Type == "" {
			return usageErrorf("--access needs --access-type")
		}
		r.Access.Value = f.access
	}
	if changed("service") {
		r.Access = resource.Access{Type: resource.AccessTCP, Value: f.service}
	}
	if changed("derived-from") {
		r.DerivedFrom = f.derivedFrom
	}
	if changed("expires") {
		t, err := parseExpiry(f.expires, now)
		if err != nil {
			return usageErrorf("--expires: %v", err)
		}
		r.Expires = t
	}
	if changed("handle") {
		r.Handle = f.handle
	}
	return nil
}

// parseExpiry reads an expiry: a positive duration from now, an RFC 3339
// time, or "never" for none.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "never" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf(`%q: want a duration such as "720h", an RFC 3339 time such as "2030-01-02T15:04:05Z", or "never"`, s)
	}
	return t.UTC(), nil
}

// resourceFile is a resource as a file describes it. It differs from
// resource.Resource where files need more: TOML names, looser attribute
// values and a relative expiry.
type resourceFile struct {
	ID          string         `json:"id" toml:"id"`
	Handle      string         `json:"handle" toml:"handle"`
	Kind        string         `json:"kind" toml:"kind"`
	Name        string         `json:"name" toml:"name"`
	Description string         `json:"description" toml:"description"`
	Tags        []string       `json:"tags" toml:"tags"`
	Attrs       map[string]any `json:"attrs" toml:"attrs"`
	Access      struct {
		Type  string `json:"type" toml:"type"`
		Value string `json:"value" toml:"value"`
	} `json:"access" toml:"access"`
	// Service is short for access {type = "tcp", value = Service}.
	Service     string   `json:"service" toml:"service"`
	DerivedFrom []string `json:"derived_from" toml:"derived_from"`
	Expires     any      `json:"expires" toml:"expires"`

	// Set by the daemon and ignored here; accepted so that the output of
	// 'peerctl ls -o json' can be edited and advertised again.
	Owner   string `json:"owner" toml:"owner"`
	Seq     uint64 `json:"seq" toml:"seq"`
	Updated any    `json:"updated" toml:"updated"`
}

// readResourceFile reads a resource from a JSON or TOML file, by its
// extension. Unknown fields are an error, so a misspelt field is not
// silently dropped.
func readResourceFile(path string, now time.Time) (resource.Resource, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".json" && ext != ".toml" {
		return resource.Resource{}, usageErrorf("%s: unknown format: name the file .json or .toml", path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return resource.Resource{}, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxResourceFile+1))
	if err != nil {
		return resource.Resource{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxResourceFile {
		return resource.Resource{}, fmt.Errorf("%s: larger than %d bytes; is it a resource file?", path, maxResourceFile)
	}
	var rf resourceFile
	if ext == ".json" {
		err = decodeJSON(data, &rf)
	} else {
		err = decodeTOML(data, &rf)
	}
	if err != nil {
		return resource.Resource{}, fmt.Errorf("%s: %w", path, err)
	}
	r, err := rf.resource(now)
	if err != nil {
		return resource.Resource{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func decodeJSON(data []byte, rf *resourceFile) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// Numbers stay as written, so an attribute of 2 reads "2", not "2.0".
	dec.UseNumber()
	if err := dec.Decode(rf); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("line %d: %s", 1+bytes.Count(data[:se.Offset], []byte("\n")), se)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value; a file holds one resource")
	}
	return nil
}

func decodeTOML(data []byte, rf *resourceFile) error {
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(rf)
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		msgs := make([]string, 0, len(sme.Errors))
		for _, e := range sme.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("unknown field %q (line %d)", strings.Join(e.Key(), "."), row))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Errorf("line %d: %s", row, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return err
}

func (rf *resourceFile) resource(now time.Time) (resource.Resource, error) {
	r := resource.Resource{
		ID:          rf.ID,
		Handle:      rf.Handle,
		Kind:        rf.Kind,
		Name:        rf.Name,
		Description: rf.Description,
		Tags:        rf.Tags,
		Access:      resource.Access{Type: rf.Access.Type, Value: rf.Access.Value},
		DerivedFrom: rf.DerivedFrom,
	}
	if rf.Service != "" {
		if rf.Access.Type != "" || rf.Access.Value != "" {
			return resource.Resource{}, errors.New(`service and access are both set: service = "HOST:PORT" is short for an access of type tcp; give one of them`)
		}
		if err := checkServiceAddr(rf.Service); err != nil {
			return resource.Resource{}, fmt.Errorf("service %w", err)
		}
		r.Access = resource.Access{Type: resource.AccessTCP, Value: rf.Service}
	}
	if len(rf.Attrs) > 0 {
		r.Attrs = map[string]string{}
		if err := flattenAttrs(r.Attrs, "", rf.Attrs); err != nil {
			return resource.Resource{}, err
		}
	}
	switch v := rf.Expires.(type) {
	case nil:
	case string:
		t, err := parseExpiry(v, now)
		if err != nil {
			return resource.Resource{}, fmt.Errorf("expires: %w", err)
		}
		r.Expires = t
	case time.Time:
		r.Expires = v.UTC()
	default:
		return resource.Resource{}, fmt.Errorf("expires: want a duration or a time with its offset, such as 2030-01-02T15:04:05Z")
	}
	return r, nil
}

// flattenAttrs adds the attributes of m to attrs as strings, naming those
// of nested tables by their dotted path, as TOML's dotted keys (gpu.count =
// 2) produce them.
func flattenAttrs(attrs map[string]string, prefix string, m map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := prefix + k
		switch v := m[k].(type) {
		case string:
			attrs[key] = v
		case json.Number:
			attrs[key] = v.String()
		case int64:
			attrs[key] = strconv.FormatInt(v, 10)
		case float64:
			attrs[key] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			attrs[key] = strconv.FormatBool(v)
		case map[string]any:
			if err := flattenAttrs(attrs, key+".", v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("attribute %q: want a string, number or boolean", key)
		}
	}
	return nil
}
