# Install rules: libraries, headers and an exported package so that an outside project
# can do find_package(itn CONFIG REQUIRED) and link itn::sync (and later itn::itree, ...).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(itn_libraries GLOBAL PROPERTY ITN_LIBRARIES)
install(TARGETS ${itn_libraries} EXPORT itnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(lib IN LISTS itn_libraries)
  get_target_property(dir ${lib} SOURCE_DIR)
  get_target_property(headers ${lib} ITN_PUBLIC_HEADERS)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
  foreach(header IN LISTS headers)
    file(RELATIVE_PATH header_rel ${dir} ${header})
    get_filename_component(header_dir ${header_rel} DIRECTORY)
    install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${rel}/${header_dir})
  endforeach()
endforeach()

install(EXPORT itnTargets NAMESPACE itn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
configure_package_config_file(cmake/itnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/itnConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/itnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/itnConfig.cmake ${PROJECT_BINARY_DIR}/itnConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
