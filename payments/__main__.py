import sys

from payments.ops.setup_check import main

sys.exit(main())
