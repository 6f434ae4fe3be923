"""The dataflow documents talkcheck ships; customcrm-exact.rst is the default spec."""
