import ArgumentParser
PostclassdCommand.main()
