package query

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/pullnet/pullnet/resource"
)

// Test catalogs are generated from the vocabulary below, in which no word
// contains another. Free text found in such text always lines up with its
// words, so the index, which knows only whole words, can find every match:
// the property test relies on that.
var (
	testKinds = []string{"compute", "dataset", "model", "service", "skill", "file"}
	testTags  = []string{"gpu", "tpu", "cuda", "rocm", "nlp", "vision", "audio", "eu", "us", "free", "paid", "linux"}
	testWords = []string{
		"stable", "diffusion", "llama", "whisper", "render", "farm", "cluster",
		"corpus", "images", "speech", "translation", "inference", "training",
		"server", "storage", "backup", "archive", "quantum", "genome", "weather",
		"market", "prices", "café", "über", "naïve", "xl", "fast",
	}
	// testAttrs maps attribute keys to the values they take. Values are
	// lowercase and numbers are written plainly, as the index needs them to
	// be for attr:key=value lookups to find every match.
	testAttrs = map[string][]string{
		"gpu.count": {"1", "2", "4", "8"},
		"vram":      {"8", "16", "24", "48", "80"},
		"region":    {"eu", "us", "ap"},
		"os":        {"linux", "windows", "macos"},
		"license":   {"mit", "apache-2.0", "cc-by-4.0", "proprietary"},
		"price":     {"0", "0.5", "1.25", "10"},
	}
	testAttrKeys = []string{"gpu.count", "vram", "region", "os", "license", "price"}
	// testTitles are names that recur in a real catalog, so that phrase
	// queries find something.
	testTitles = []string{"Stable Diffusion", "Stable Diffusion XL", "Llama inference server", "Whisper speech", "Render farm", "Genome corpus"}
)

// genText returns a few words of the vocabulary, some capitalized, with
// varied separators.
func genText(rng *rand.Rand, min, max int) string {
	n := min + rng.IntN(max-min+1)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString([]string{" ", " ", " ", ", ", " - ", "/"}[rng.IntN(6)])
		}
		w := testWords[rng.IntN(len(testWords))]
		switch rng.IntN(4) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	return b.String()
}

// genResource returns a normalized resource with the given index. ids
// lists IDs of earlier resources it may derive from.
func genResource(rng *rand.Rand, i int, ids []string) *resource.Resource {
	r := &resource.Resource{
		Owner:       fmt.Sprintf("owner%d", rng.IntN(50)),
		Handle:      fmt.Sprintf("r%d", i),
		Kind:        testKinds[rng.IntN(len(testKinds))],
		Name:        genText(rng, 1, 4),
		Description: genText(rng, 0, 8),
		Attrs:       map[string]string{},
	}
	if rng.IntN(4) == 0 {
		r.Name = testTitles[rng.IntN(len(testTitles))]
		if rng.IntN(2) == 0 {
			r.Name += " " + genText(rng, 1, 2)
		}
	}
	r.ID = resource.NewID(r.Owner, r.Handle)
	for range rng.IntN(4) {
		r.Tags = append(r.Tags, testTags[rng.IntN(len(testTags))])
	}
	for range rng.IntN(4) {
		k := testAttrKeys[rng.IntN(len(testAttrKeys))]
		r.Attrs[k] = testAttrs[k][rng.IntN(len(testAttrs[k]))]
	}
	if r.Kind == resource.KindCompute && rng.IntN(2) == 0 {
		// Much of what is offered for compute is GPUs.
		r.Tags = append(r.Tags, "gpu")
		r.Attrs["gpu.count"] = testAttrs["gpu.count"][rng.IntN(4)]
	}
	for range rng.IntN(3) {
		if len(ids) > 0 {
			r.DerivedFrom = append(r.DerivedFrom, ids[rng.IntN(len(ids))])
		}
	}
	r.Normalize()
	return r
}

// genCatalog returns n resources.
func genCatalog(rng *rand.Rand, n int) []*resource.Resource {
	cat := make([]*resource.Resource, 0, n)
	var ids []string
	for i := range n {
		r := genResource(rng, i, ids)
		cat = append(cat, r)
		ids = append(ids, r.ID)
	}
	return cat
}

// genTerm returns one term in query syntax, drawn so that it often
// matches resources of cat.
func genTerm(rng *rand.Rand, cat []*resource.Resource) string {
	r := cat[rng.IntN(len(cat))]
	switch rng.IntN(9) {
	case 0:
		return "kind:" + testKinds[rng.IntN(len(testKinds))]
	case 1:
		return "tag:" + strings.ToUpper(testTags[rng.IntN(len(testTags))])
	case 2:
		return "id:" + r.ID
	case 3:
		if len(r.DerivedFrom) > 0 {
			return "derived:" + r.DerivedFrom[0]
		}
		return "id:" + r.ID
	case 4, 5:
		k := testAttrKeys[rng.IntN(len(testAttrKeys))]
		v := testAttrs[k][rng.IntN(len(testAttrs[k]))]
		if rng.IntN(3) == 0 {
			v = strconv.Itoa(rng.IntN(30))
		}
		return k + []string{"=", "!=", "<", "<=", ">", ">="}[rng.IntN(6)] + v
	case 6:
		return testWords[rng.IntN(len(testWords))]
	case 7:
		return "ab" // free text too short to look up
	}
	// A run of whole words cut from the resource's name or description,
	// with the separators between them.
	text := r.Name
	if r.Description != "" && rng.IntN(2) == 0 {
		text = r.Description
	}
	var spans [][2]int
	start := -1
	for i, c := range text + " " {
		if isWordRune(c) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			spans = append(spans, [2]int{start, i})
			start = -1
		}
	}
	a := rng.IntN(len(spans))
	b := min(len(spans)-1, a+rng.IntN(3))
	phrase := strings.ToLower(text[spans[a][0]:spans[b][1]])
	return `"` + strings.ReplaceAll(phrase, `"`, `\"`) + `"`
}

// genQuery returns a query of one to three groups of one to three terms.
func genQuery(rng *rand.Rand, cat []*resource.Resource) string {
	groups := make([]string, 1+rng.IntN(3))
	for i := range groups {
		alts := make([]string, 1+rng.IntN(3))
		for j := range alts {
			alts[j] = genTerm(rng, cat)
		}
		groups[i] = strings.Join(alts, "|")
	}
	return strings.Join(groups, " ")
}
