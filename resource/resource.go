// Package resource defines what a pullnet participant offers: the Resource
// type, its normalization and validation, its stable ID and the index terms it
// is advertised under.
//
// The package is plain Go with no libp2p dependency, so a thin client such as
// peerctl can share these types with the node library. Signing and the wire
// form live in protocol/record.
package resource

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Well-known kinds. Any lowercase word is a valid kind too.
const (
	KindService = "service"
	KindDataset = "dataset"
	KindCompute = "compute"
	KindModel   = "model"
	KindSkill   = "skill"
	KindPerson  = "person"
	KindFile    = "file"
)

// Access types.
const (
	// AccessTCP is a TCP service behind the provider's daemon. Its address is
	// local to the provider and never published.
	AccessTCP = "tcp"
	// AccessLibp2p is a libp2p protocol ID served by the provider's host.
	AccessLibp2p = "libp2p"
	// AccessURL is a URL the consumer can open.
	AccessURL = "url"
	// AccessContact is a human contact (an e-mail address, a handle).
	AccessContact = "contact"
)

// Limits on a resource's fields. They bound what a node stores and answers
// for any one resource, and keep a signed resource well under the wire cap.
const (
	MaxKindLen        = 32
	MaxNameLen        = 200
	MaxDescriptionLen = 4096
	MaxTags           = 32
	MaxTagLen         = 64
	MaxAttrs          = 32
	MaxAttrKeyLen     = 64
	MaxAttrValueLen   = 256
	MaxDerivedFrom    = 16
	MaxAccessValueLen = 512
	MaxHandleLen      = 128
)

// Access says how a granted consumer reaches a resource.
type Access struct {
	// Type is AccessTCP, AccessLibp2p, AccessURL, AccessContact, or empty
	// when the resource needs no data path.
	Type string `json:"type,omitempty"`
	// Value is the protocol ID, URL or contact. For AccessTCP it is the
	// provider's local address, which only the provider knows.
	Value string `json:"value,omitempty"`
}

// Resource is one thing a participant offers.
type Resource struct {
	// ID is derived from Owner and Handle (see NewID). Empty on a new
	// resource before it is advertised.
	ID string `json:"id,omitempty"`
	// Owner is the owner's peer ID in its string form.
	Owner string `json:"owner,omitempty"`
	// Handle is the owner's local name for the resource. Empty means one is
	// made up when the resource is first advertised.
	Handle      string            `json:"handle,omitempty"`
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Attrs       map[string]string `json:"attrs,omitempty"`
	Access      Access            `json:"access,omitempty"`
	// DerivedFrom lists the IDs of resources this one builds on.
	DerivedFrom []string `json:"derived_from,omitempty"`
	// Seq is bumped on every change; receivers keep the highest.
	Seq uint64 `json:"seq,omitempty"`
	// Expires is when receivers drop the resource; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// Updated is when the owner last changed the resource.
	Updated time.Time `json:"updated,omitzero"`
	// Withdrawn marks a tombstone: the version an owner publishes when it
	// withdraws the resource, so that watchers learn it is gone.
	Withdrawn bool `json:"withdrawn,omitempty"`
}

var (
	kindRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	tagRE     = regexp.MustCompile(`^[\p{Ll}\p{N}][\p{Ll}\p{N}._+#-]*$`)
	attrKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// Normalize lowercases and trims the kind and tags, sorts and de-duplicates
// the tags, and trims the name. It changes r in place.
func (r *Resource) Normalize() {
	r.Kind = strings.ToLower(strings.TrimSpace(r.Kind))
	r.Name = strings.TrimSpace(r.Name)
	r.Description = strings.TrimSpace(r.Description)
	if len(r.Tags) > 0 {
		seen := make(map[string]bool, len(r.Tags))
		tags := r.Tags[:0:0]
		for _, t := range r.Tags {
			t = strings.ToLower(strings.TrimSpace(t))
			if t == "" || seen[t] {
				continue
			}
			seen[t] = true
			tags = append(tags, t)
		}
		sort.Strings(tags)
		r.Tags = tags
	}
	if len(r.Attrs) == 0 {
		r.Attrs = nil
	}
	r.Access.Type = strings.ToLower(strings.TrimSpace(r.Access.Type))
}

// Validate reports the first field of r that breaks the resource model or its
// limits. It expects a normalized resource.
func (r *Resource) Validate() error {
	switch {
	case r.Kind == "":
		return errors.New("kind is required")
	case len(r.Kind) > MaxKindLen || !kindRE.MatchString(r.Kind):
		return fmt.Errorf("kind %q: want a lowercase word of at most %d characters", r.Kind, MaxKindLen)
	case r.Name == "":
		return errors.New("name is required")
	case len(r.Name) > MaxNameLen:
		return fmt.Errorf("name is %d bytes, at most %d allowed", len(r.Name), MaxNameLen)
	case len(r.Description) > MaxDescriptionLen:
		return fmt.Errorf("description is %d bytes, at most %d allowed", len(r.Description), MaxDescriptionLen)
	case len(r.Tags) > MaxTags:
		return fmt.Errorf("%d tags, at most %d allowed", len(r.Tags), MaxTags)
	case len(r.Attrs) > MaxAttrs:
		return fmt.Errorf("%d attributes, at most %d allowed", len(r.Attrs), MaxAttrs)
	case len(r.DerivedFrom) > MaxDerivedFrom:
		return fmt.Errorf("derived_from lists %d resources, at most %d allowed", len(r.DerivedFrom), MaxDerivedFrom)
	case len(r.Handle) > MaxHandleLen:
		return fmt.Errorf("handle is %d bytes, at most %d allowed", len(r.Handle), MaxHandleLen)
	case len(r.Access.Value) > MaxAccessValueLen:
		return fmt.Errorf("access value is %d bytes, at most %d allowed", len(r.Access.Value), MaxAccessValueLen)
	}
	for _, t := range r.Tags {
		if len(t) > MaxTagLen || !tagRE.MatchString(t) {
			return fmt.Errorf("tag %q: want lowercase letters, digits and ._+#- (at most %d bytes)", t, MaxTagLen)
		}
	}
	for k, v := range r.Attrs {
		if len(k) > MaxAttrKeyLen || !attrKeyRE.MatchString(k) {
			return fmt.Errorf("attribute key %q: want letters, digits and ._- (at most %d bytes)", k, MaxAttrKeyLen)
		}
		if len(v) > MaxAttrValueLen {
			return fmt.Errorf("attribute %q: value is %d bytes, at most %d allowed", k, len(v), MaxAttrValueLen)
		}
	}
	for _, d := range r.DerivedFrom {
		if _, err := cid.Decode(d); err != nil {
			return fmt.Errorf("derived_from %q is not a resource ID", d)
		}
	}
	switch r.Access.Type {
	case "", AccessTCP, AccessLibp2p, AccessURL, AccessContact:
	default:
		return fmt.Errorf("access type %q: want tcp, libp2p, url or contact", r.Access.Type)
	}
	return nil
}

// Expired reports whether r has an expiry time that is before now.
func (r *Resource) Expired(now time.Time) bool {
	return !r.Expires.IsZero() && now.After(r.Expires)
}

// Clone returns a deep copy of r.
func (r Resource) Clone() Resource {
	r.Tags = append([]string(nil), r.Tags...)
	r.DerivedFrom = append([]string(nil), r.DerivedFrom...)
	if r.Attrs != nil {
		attrs := make(map[string]string, len(r.Attrs))
		for k, v := range r.Attrs {
			attrs[k] = v
		}
		r.Attrs = attrs
	}
	return r
}

// NewID derives a resource ID from its owner's peer ID (string form) and the
// owner's local handle. The ID does not depend on the content, so it stays
// the same across edits, and only the owner can sign resources under it.
func NewID(owner, handle string) string {
	sum := sha256.Sum256([]byte("pullnet/resource/v1\x00" + owner + "\x00" + handle))
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err) // cannot happen: the digest has the right length
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

// Index term prefixes. A term is prefix + ":" + value.
const (
	TermKind    = "kind"
	TermTag     = "tag"
	TermID      = "id"
	TermAttr    = "attr" // attr:key=value, exact match
	TermAttrKey = "key"  // key:name, the attribute is present
	TermWord    = "word" // a word of the name or description
	TermDerived = "derived"
)

// MaxWords bounds how many distinct words of a resource's name and
// description it is indexed under.
const MaxWords = 24

// Term builds an index term.
func Term(prefix, value string) string { return prefix + ":" + value }

// IndexTerms lists the distinct terms r is advertised under: its kind, each
// tag, its ID, each attribute (key present, and exact key=value), what it
// derives from, and up to MaxWords words of its name and description.
func (r *Resource) IndexTerms() []string {
	terms := []string{Term(TermKind, r.Kind)}
	if r.ID != "" {
		terms = append(terms, Term(TermID, r.ID))
	}
	for _, t := range r.Tags {
		terms = append(terms, Term(TermTag, t))
	}
	keys := make([]string, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		terms = append(terms, Term(TermAttrKey, strings.ToLower(k)), AttrTerm(k, r.Attrs[k]))
	}
	for _, d := range r.DerivedFrom {
		terms = append(terms, Term(TermDerived, d))
	}
	words := Words(r.Name + " " + r.Description)
	if len(words) > MaxWords {
		words = words[:MaxWords]
	}
	for _, w := range words {
		terms = append(terms, Term(TermWord, w))
	}
	return terms
}

// AttrTerm is the index term of the exact attribute key=value. Queries
// compare attributes case-insensitively, and numerically when both sides are
// numbers, so the term is built from a normal form: the key and a text value
// lowercased, a number in its shortest decimal form ("2.0" and "2" are one
// term).
func AttrTerm(key, value string) string {
	if f, err := strconv.ParseFloat(value, 64); err == nil && !math.IsNaN(f) {
		value = strconv.FormatFloat(f, 'g', -1, 64)
	} else {
		value = strings.ToLower(value)
	}
	return Term(TermAttr, strings.ToLower(key)+"="+value)
}

// MinWordLen is the shortest word that is indexed; shorter words are too
// common to narrow a search.
const MinWordLen = 3

// Words splits text into its distinct lowercase words of at least MinWordLen
// letters or digits, in order of first appearance.
func Words(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c)
	}) {
		if len([]rune(f)) < MinWordLen || seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	return out
}

// TermCID maps an index term to the CID that providers announce in the DHT.
// The prefix keeps pullnet's keys apart from any content CID.
func TermCID(term string) cid.Cid {
	sum := sha256.Sum256([]byte("pullnet/term/v1\x00" + term))
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}
