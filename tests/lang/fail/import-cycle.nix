# a.nix is b.nix and b.nix is a.nix: a real cycle
import ../lib/cycle-loop-a.nix
