from tap_fullstory.cli import main

main()
