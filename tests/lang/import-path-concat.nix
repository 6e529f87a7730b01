import (./lib + "/value.nix")
