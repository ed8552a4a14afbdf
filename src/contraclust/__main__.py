from contraclust.cli.main import entry

entry()
