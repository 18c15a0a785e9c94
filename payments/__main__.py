import sys

from payments.cli import main

sys.exit(main())
