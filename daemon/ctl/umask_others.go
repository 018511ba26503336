//go:build !unix

package ctl

func umask(m int) int { return m }
