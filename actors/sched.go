package actors

import "runtime"

func runtimeGosched() { runtime.Gosched() }
