from tap_fullstory.launch import main

main()
