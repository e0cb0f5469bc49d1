package main

import (
	"errors"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"
)

// logToFile is set when --log names a file: errors then go to both the log
// and stderr.
var logToFile bool

// configureLogging applies --debug, --log and --log-format. The JSON format
// is runc's ({"level","msg","time"} per line), which containerd's runc shim
// and podman's conmon parse.
func configureLogging(c *cli.Context) error {
	if c.GlobalBool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := c.GlobalString("log-format"); f {
	case "", "text":
		logrus.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	case "json":
		logrus.SetFormatter(new(logrus.JSONFormatter))
	default:
		return errors.New("invalid log-format: " + f)
	}
	if path := c.GlobalString("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		logrus.SetOutput(f)
		logToFile = true
	}
	return nil
}
