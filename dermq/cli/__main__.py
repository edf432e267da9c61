from dermq.cli import main

main()
