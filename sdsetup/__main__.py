from sdsetup.cli import main

main()
