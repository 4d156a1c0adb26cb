package funcname

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type svc struct{}

func (*svc) Deduct() {}

func TestShort(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{give: "github.com/txkit/txkit/modules/credits.(*Service).Deduct", want: "credits.(*Service).Deduct"},
		{give: "github.com/txkit/txkit/modules/credits.(*Service).Deduct.func1", want: "credits.(*Service).Deduct"},
		{give: "main.main.func1.2", want: "main.main"},
		{give: "pkg.F.gowrap3", want: "pkg.F"},
		{give: "pkg.(*T).M-fm", want: "pkg.(*T).M"},
		{give: "pkg.function", want: "pkg.function"},
		{give: "example.com/x.Handler[...]", want: "x.Handler[...]"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			require.Equal(t, tt.want, Short(tt.give))
		})
	}
}

func TestOf(t *testing.T) {
	s := &svc{}
	require.Equal(t, "funcname.(*svc).Deduct", Of(s.Deduct))
	require.Equal(t, "funcname.TestShort", Of(TestShort))
	require.Empty(t, Of(nil))
	var nilFn func()
	require.Empty(t, Of(nilFn))
}
