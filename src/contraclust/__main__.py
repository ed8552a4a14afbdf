import sys

from contraclust.cli.main import main

sys.exit(main())
