package cli

import (
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestMain_(t *testing.T) {
	var got []string
	var verbose bool
	a := New("prog", "about")
	a.Register(&Command{
		Name:  "do",
		Setup: func(fs *flag.FlagSet) { fs.BoolVar(&verbose, "v", false, "verbose") },
		Run: func(_ *flag.FlagSet, args []string) error {
			got = args
			switch {
			case len(args) > 0 && args[0] == "fail":
				return Exit(4, errors.New("left\nover"))
			case len(args) > 0 && args[0] == "bad":
				return UsageError("bad %s", "args")
			case len(args) > 0 && args[0] == "plain":
				return fmt.Errorf("plain")
			}
			return nil
		},
	})
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"do", "a", "-v", "b"}, 0},
		{[]string{"do", "fail"}, 4},
		{[]string{"do", "bad"}, 2},
		{[]string{"do", "plain"}, 1},
		{[]string{"nope"}, 2},
		{[]string{"do", "--no-such-flag"}, 2},
		{[]string{"help"}, 0},
		{[]string{"do", "--help"}, 0},
	}
	for _, c := range cases {
		if code := a.Main(c.args); code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
	}
	verbose = false
	a.Main([]string{"do", "x", "-v", "--", "-y"})
	if fmt.Sprint(got) != "[x -y]" || !verbose {
		t.Errorf("positional args %v verbose %v", got, verbose)
	}
}
