package query_test

import (
	"fmt"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/resource"
)

func Example() {
	q, err := query.Parse(`KIND:Compute tag:gpu | tag:tpu gpu.count>=2 "Stable Diffusion"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q)

	r := &resource.Resource{
		Kind:  "compute",
		Name:  "Stable Diffusion XL box",
		Tags:  []string{"gpu"},
		Attrs: map[string]string{"gpu.count": "4"},
	}
	fmt.Println(q.Match(r), q.Score(r))

	terms, err := q.LookupTerms()
	fmt.Println(terms, err)

	_, err = query.Parse(`tag:gpu "stable`)
	fmt.Println(err)
	// Output:
	// kind:compute tag:gpu|tag:tpu gpu.count>=2 "stable diffusion"
	// true 0.8375
	// [tag:gpu tag:tpu] <nil>
	// position 9: unterminated quote
}
