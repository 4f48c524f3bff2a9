package csvrows

import (
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	var got [][2]float64
	n, err := Read(strings.NewReader("t,x\n# comment\n\n1, 2\n3,4\n"), "t,x", 10, func(line int, v []float64) error {
		got = append(got, [2]float64{v[0], v[1]})
		return nil
	})
	if err != nil || n != 2 || got[1] != [2]float64{3, 4} {
		t.Fatalf("n=%d got=%v err=%v", n, got, err)
	}
	for _, bad := range []string{"", "t,x\n", "1,2\nx,y\n", "1,2,3\n", "1,NaN\n", "1,2\n3,4\n5,6\n"} {
		if _, err := Read(strings.NewReader(bad), "t,x", 2, func(int, []float64) error { return nil }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
