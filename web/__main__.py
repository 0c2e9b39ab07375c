import sys

from web.app import main

sys.exit(main())
