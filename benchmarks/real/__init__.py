"""Figure 7: seqcast with no model settings vs simple peers on real, package-bundled series."""
