from oob.cli.app import main

main()
