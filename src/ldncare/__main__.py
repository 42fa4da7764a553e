"""``python -m ldncare``: the same command line as the ``ldncare`` script."""

from ldncare.cli import main

if __name__ == "__main__":
    main()
