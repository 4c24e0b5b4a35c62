from unkai.cli import main

main()
