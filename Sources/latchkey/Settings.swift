import Configuration
import LatchkeyCloud

/// Reads the service's settings: the given flags first, then the environment, then the defaults.
func readConfiguration(flags: [(key: String, value: String?)]) throws -> LatchkeyConfiguration {
    var values: [AbsoluteConfigKey: ConfigValue] = [:]
    for case let (key, value?) in flags {
        values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] =
            ConfigValue(.string(value), isSecret: key == "database.url")
    }
    let reader = ConfigReader(providers: [
        InMemoryProvider(name: "flags", values: values),
        EnvironmentVariablesProvider(),
    ])
    return try LatchkeyConfiguration(reader: reader)
}
