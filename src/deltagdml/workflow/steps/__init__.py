"""One module per rule file (data, train, evaluate, analysis, dynamics, loop); each function
is one workflow step, called by one rule script with keyword arguments. Figure modules
(matplotlib) are imported inside the steps that draw, so that the many MD, training and
labelling jobs start without them (0.4 s of each job's start)."""
