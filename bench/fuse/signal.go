package main

import (
	"os"
	"os/signal"
)

func signalNotifyImpl(c chan os.Signal, sigs ...os.Signal) { signal.Notify(c, sigs...) }
