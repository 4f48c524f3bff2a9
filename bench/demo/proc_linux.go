package demo

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a child if the demo dies first.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
