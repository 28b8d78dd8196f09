from privrob.cli import main

main()
