"""python -m cvdemo.distill three-way | sweep | make-teacher (see cvdemo.distill.digits)."""
import sys

from .digits import main

sys.exit(main())
