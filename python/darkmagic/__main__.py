"""`python -m darkmagic ...` runs the darkmagic command, as the `darkmagic` script does."""
from darkmagic._launcher import main

main()
