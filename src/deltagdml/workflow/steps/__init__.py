"""One module per rule file (data, train, evaluate, analysis, dynamics); each function
is one workflow step, called by one rule script with keyword arguments."""
